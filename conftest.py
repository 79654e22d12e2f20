# Enables the plugin when running from a checkout that is not installed; once installed, the
# pytest11 entry point of the same name loads it and this line finds it registered already.
pytest_plugins = ["pytest_iobench.plugin"]
