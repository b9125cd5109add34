from alembic import context

from auth.models import SCHEMA, Base
from auth.settings import AuthSettings
from chassis.migrations import run_env

url = context.config.attributes.get("database_url") or AuthSettings().database_url
run_env(metadata=Base.metadata, schema=SCHEMA, url=url)
