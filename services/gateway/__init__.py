"""The gateway: the platform's single HTTP entry point.

It matches each request against the routing table in `routes.py`, enforces that route's access
policy (public, signed-in, admin) on the caller's JWT, and forwards the request unchanged to the
service that owns the path over one pooled HTTP client. Services verify the JWT themselves as
well: the gateway's check is a first line, never the only one.
"""
