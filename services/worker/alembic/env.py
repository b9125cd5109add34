from alembic import context

from chassis.migrations import run_env
from worker.models import SCHEMA, Base
from worker.settings import WorkerSettings

url = context.config.attributes.get("database_url") or WorkerSettings().database_url
run_env(metadata=Base.metadata, schema=SCHEMA, url=url)
