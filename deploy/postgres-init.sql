-- Creates orderflow's own database and login role beside Temporal's databases.
--
-- The official postgres image runs this file once, from /docker-entrypoint-initdb.d, when the
-- data volume is first initialised; it is fed to psql as the superuser. Temporal's databases
-- (temporal, temporal_visibility) are created by the temporal service itself.
--
-- The password is read from the container's APP_DB_PASSWORD variable (psql 15 or later), so it
-- never sits in this file. To change it later, ALTER ROLE by hand: this file does not run again
-- on an existing volume.

\set ON_ERROR_STOP on
\getenv orderflow_password APP_DB_PASSWORD

\if :{?orderflow_password}
\else
    DO $$ BEGIN RAISE EXCEPTION 'APP_DB_PASSWORD is not set for the postgresql service'; END $$;
\endif

CREATE ROLE orderflow LOGIN PASSWORD :'orderflow_password';
CREATE DATABASE orderflow OWNER orderflow;
-- Only the owner (and superusers) may connect to orderflow's database.
REVOKE ALL ON DATABASE orderflow FROM PUBLIC;
