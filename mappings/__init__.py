"""Declarative mappings, one YAML file per source kind; loaded by `itsm_core.mapping.load_mapping`."""
