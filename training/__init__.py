"""Training pipelines: config, MLflow tracking, the pyfunc CX scorer (``cx_models.training``)."""
