"""Reports for analysts: definitions in the config (`spec.py`), the period they cover (`period.py`), the standard
reports computed in the database (`queries.py`) and the files they are written to (`files.py`). The `report` flow
(`flows/reports.py`) and `itsm report` run them."""
