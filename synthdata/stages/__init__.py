"""Pipeline stages: each wraps one library step with its recipe section and an MLflow run.

The CLI and ``dvc.yaml`` both call these functions, so a run by hand and ``dvc repro`` behave
the same. Paths come from the caller (``dvc.yaml`` or CLI options), never from literals here.
"""
