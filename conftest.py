"""Root conftest: keep pytest's doctest collection away from files it cannot import.

``training/cx_pyfunc.py`` is executed by MLflow when it loads a model;
``serving/spark/`` needs the optional ``spark`` extra.
"""

import importlib.util

collect_ignore = ["training/cx_pyfunc.py"]
if importlib.util.find_spec("pyspark") is None:
    collect_ignore.append("serving/spark")
