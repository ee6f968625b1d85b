-- Authorization that follows the database: every access token carries its account's
-- token_version, which changes whenever the role or the active flag does; tokens signed with
-- an older version are refused (revocation markers in Redis, see services/kit/tokens.py).
-- A deactivated account cannot log in or refresh, and its tokens stop working at once.

ALTER TABLE users
    ADD COLUMN token_version integer NOT NULL DEFAULT 0,
    ADD COLUMN active        boolean NOT NULL DEFAULT true;
