from alembic import context

from catalog.models import SCHEMA, Base
from catalog.settings import CatalogSettings
from chassis.migrations import run_env

url = context.config.attributes.get("database_url") or CatalogSettings().database_url
run_env(metadata=Base.metadata, schema=SCHEMA, url=url)
