"""Each experiment kind's Streamlit view: ``page()``, and optionally ``curves(run, series)`` and
``results(run, detail)`` for the run view. Named in the kind's registry record, imported on first use."""
