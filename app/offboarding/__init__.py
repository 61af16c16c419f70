"""Tenant offboarding: revoke every key at once, then delete the tenant and all its data."""
