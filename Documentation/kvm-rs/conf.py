# Sphinx configuration for the kvm-rs documentation (checked by
# `make check` with warnings as errors: scripts/check-docs.sh).
project = "kvm-rs"
copyright = "kvm-rs developers"
master_doc = "index"
exclude_patterns = []
html_theme = "alabaster"
