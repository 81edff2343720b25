"""Create Neutron's schema in sqlite from its models (run inside the realcloud venv): `python neutron_db.py URL`.

neutron-db-manage's migrations ALTER constraints, which SQLite cannot do; Neutron's own unit tests build the schema
from the models the same way. `neutron-db-manage stamp heads` then records it as current.
"""
import sys

import sqlalchemy
from neutron.db.migration.models import head

engine = sqlalchemy.create_engine(sys.argv[1])
head.get_metadata().create_all(engine)
engine.dispose()
