"""The auth service: accounts, passwords, access and refresh tokens, and roles.

Users register with email, password and name (always as USER), log in for a short-lived JWT
access token plus an opaque rotating refresh token, and ask who they are with GET /auth/verify.
Admins list users and change roles; the first admin comes from ADMIN_EMAIL/ADMIN_PASSWORD at
start or from `realtimeorder create-admin`. Its data lives in the Postgres schema `auth`; login
rate limits live in Redis.
"""
