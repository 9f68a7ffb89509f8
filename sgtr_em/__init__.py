"""Logic of the sgtr-em reproduction workflow. Plain Python: nothing here knows about Snakemake."""

__version__ = "0.1.0"
