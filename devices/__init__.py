"""Device profiles shipped with pytest-edgeenergy: one TOML file per device.

Installed, this folder is the package ``pytest_edgeenergy.devices``; see
``pytest_edgeenergy.profiles`` for the file format and the checks made on it.
"""
