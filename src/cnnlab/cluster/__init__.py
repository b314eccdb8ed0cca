"""A study's runs and a search's trials as Ray tasks on a cluster (`--ray ADDRESS`).

    from cnnlab.cluster import connect, RayPool
    with connect("local", tracking_uri) as cluster:
        for index, result in RayPool(cluster, resources).run(fn, items):
            ...

Ray is an extra (pip install "cnnlab[ray]"); nothing else in cnnlab imports it.
"""

from cnnlab.cluster._connect import INSTALL, LOCAL, Cluster, ClusterUnreachable, connect
from cnnlab.cluster._tasks import RETRIES, RayPool

__all__ = ["INSTALL", "LOCAL", "RETRIES", "Cluster", "ClusterUnreachable", "RayPool", "connect"]
