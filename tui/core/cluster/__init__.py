"""A Dask (dask.distributed) cluster across instances: TLS material, remote commands, status, plans, dask_ssh.

No Textual and no dask on the laptop: dask runs on the instances only.
"""
