"""One package per experiment kind, each with the same layout: ``spec`` (frozen validated spec),
``run`` (the runner), ``result`` (the typed result), ``plots`` (data-then-figure plots) and its domain
modules. ``__init__`` declares the kind's :class:`~qmlapp.kinds.base.ExperimentKind` as ``KIND``."""
