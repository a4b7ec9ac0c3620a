-- The Prefect server keeps its own database beside the hub's store (created by POSTGRES_DB).
CREATE DATABASE prefect;
