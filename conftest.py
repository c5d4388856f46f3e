"""Root conftest: keep pytest's doctest collection away from files MLflow executes."""

collect_ignore = ["training/cx_pyfunc.py"]
