"""A real one-node Kubernetes cluster on this machine, without Docker: ``make cluster-up``.

``python -m k8s.node up|down|status|load IMAGE...`` (the Makefile's ``cluster-up``,
``cluster-down``) runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
containerd, the kubelet, kube-proxy and CoreDNS, all inside one network namespace of their own
(``rto-node``), so the host's interfaces, routes and firewall are never touched; the host reaches
the API server through a loopback relay. See :mod:`k8s.node.cluster` for the layout and the
host side effects it undoes.
"""
