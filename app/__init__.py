"""Action Log Service: a multi-tenant action-log and audit-log HTTP service."""
