from alembic import context

from chassis.migrations import run_env
from orders.models import SCHEMA, Base
from orders.settings import OrdersSettings

url = context.config.attributes.get("database_url") or OrdersSettings().database_url
run_env(metadata=Base.metadata, schema=SCHEMA, url=url)
