"""Writes reference/configuration.md at `mkdocs build` time (mkdocs-gen-files): every key of every command's
config, with its type, default and the description its dataclass gives it (core/describe.py), the same source as
`rerankforge <command> --print-config --explain`."""

import mkdocs_gen_files

from rerankforge.core.describe import reference_markdown

with mkdocs_gen_files.open("reference/configuration.md", "w") as page:
    page.write(reference_markdown())
