"""Released raw results: the authors' file-name grammar (`names`), import into our evaluation JSONs and
tables (`importer`), fetching a release and bundling our own results (`bundle`). Plain Python, no Snakemake.
"""
