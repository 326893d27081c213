"""Jupyter settings of `make lab`, and of nothing else.

`python -m workbook lab` puts this folder first on JUPYTER_CONFIG_PATH for the JupyterLab it
starts, so these values win over the same ones in ~/.jupyter; every other setting of the user's
still applies. Nothing here is written anywhere: the files are read in place.
"""

from pathlib import Path

import zmq

c = get_config()  # noqa: F821 (traitlets provides it to config files)

# Kernels talk to the server over local TCP. ipykernel 7 warns "Kernel is running over TCP without
# encryption" unless the server hands the kernel CurveZMQ keys, which it does with "auto" for
# kernelspecs that declare `supported_encryption: ["curve"]` (ipykernel's python3 does). A pyzmq
# built without CurveZMQ would refuse "auto" and with it every kernel, so it keeps the default.
if zmq.has("curve"):
    c.MappingKernelManager.transport_encryption = "auto"

# JupyterLab reads setting defaults from <app_settings_dir>/overrides.json: there, the
# notification settings never ask to fetch Jupyter news (see lab/settings/overrides.json). A
# choice the user made in JupyterLab's settings editor still wins. This folder replaces
# <env>/share/jupyter/lab/settings, which holds nothing unless someone put files there.
c.LabApp.app_settings_dir = str(Path(__file__).resolve().parent / "lab" / "settings")
