"""A JSON Schema per action type: what recorded payloads must look like (enforce or warn)."""
