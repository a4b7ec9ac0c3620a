#!/bin/sh
# First start of the PostgreSQL container only: one role per use, each with its password from a secret file.
#   prefect       owns the Prefect server's database `prefect`
#   itsm          owns the hub's store `itsm` (the hub migrates and writes it)
#   itsm_reports  reads the hub's store, nothing else (analysts' tools, exports)
set -eu
secret() { cat "/run/secrets/$1"; }
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v prefect_pw="$(secret prefect_db_password)" \
  -v itsm_pw="$(secret itsm_db_password)" \
  -v reports_pw="$(secret itsm_reports_password)" <<'SQL'
CREATE ROLE prefect LOGIN PASSWORD :'prefect_pw';
CREATE ROLE itsm LOGIN PASSWORD :'itsm_pw';
CREATE ROLE itsm_reports LOGIN PASSWORD :'reports_pw';
CREATE DATABASE prefect OWNER prefect;
CREATE DATABASE itsm OWNER itsm;
\connect itsm
ALTER SCHEMA public OWNER TO itsm;
GRANT CONNECT ON DATABASE itsm TO itsm_reports;
GRANT USAGE ON SCHEMA public TO itsm_reports;
ALTER DEFAULT PRIVILEGES FOR ROLE itsm IN SCHEMA public GRANT SELECT ON TABLES TO itsm_reports;
SQL
