"""HTTP API: intake (HMAC-signed, for billing), admin (bearer tokens) and health."""
