#!/bin/sh
# Creates the role the api and the worker sign in as, with the password of
# APPLICATION_DB_PASSWORD. The postgres image runs this once, when it initialises an empty
# data directory; the migrations then grant the role access to rows and nothing else.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v password="$APPLICATION_DB_PASSWORD" <<'SQL'
CREATE ROLE task_assistant_app LOGIN PASSWORD :'password';
SQL
