"""Training pipelines: configuration, MLflow tracking, the pyfunc CX scorer (``cx_models.training``)."""
