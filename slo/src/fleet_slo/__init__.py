"""Fleet's SLOs as code: SLO files → PrometheusRule manifests and runbooks."""
