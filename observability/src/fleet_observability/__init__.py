"""Fleet's Grafana dashboards as code (`python -m fleet_observability dashboards`)."""
