#!/usr/bin/env python3
"""The Kubernetes manifests in deploy/kubernetes, checked without a cluster.

  tests/kubernetes_manifests_test.py EDGELOOP_BINARY

Every file must parse as YAML and name its kind; beyond that the manifests must agree with
each other and with the server they run: the container runs `edgeloop server` with flags
its --help lists, the probes ask for routes src/cloud/server.cpp serves on the container's
port over HTTPS, EDGELOOP_DB comes from the Secret of secret.example.yaml, the data volume
is the claim of pvc.yaml mounted at --data, the Service selects the pod and targets its
port, the TLS name (--host) resolves to 0.0.0.0 in the pod, and the pod runs as the user of
deploy/container/Dockerfile. With kubectl on PATH, `kubectl kustomize` must build the set.
What this cannot check: the API server's own validation, and the server running in a pod.
CTest runs it (label package).
"""
import os
import re
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:
    sys.exit("kubernetes_manifests_test: python3-yaml is missing (scripts/setup installs it)")

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K8S = os.path.join(SRC, "deploy", "kubernetes")
failures = []


def check(ok, message):
    if not ok:
        failures.append(message)
    return ok


def stop():
    for f in failures:
        print("kubernetes_manifests_test: FAIL: " + f, file=sys.stderr)
    sys.exit(1)


def load(name):
    try:
        with open(os.path.join(K8S, name)) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        check(False, f"{name}: not YAML: {e}")
        stop()
    for d in docs:
        check(isinstance(d, dict) and d.get("kind") and d.get("apiVersion"),
              f"{name}: a document without kind or apiVersion")
    return docs


def one(docs, kind):
    found = [d for d in docs if d.get("kind") == kind]
    if not check(len(found) == 1, f"want one {kind}, found {len(found)}"):
        stop()
    return found[0]


def flag_values(args):
    values = {}
    for a in args:
        name, _, value = a.partition("=")
        values[name] = value
    return values


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    binary = sys.argv[1]
    files = sorted(f for f in os.listdir(K8S) if f.endswith(".yaml"))
    docs = {f: load(f) for f in files}
    kustomization = one(docs["kustomization.yaml"], "Kustomization")
    listed = kustomization.get("resources", [])
    for r in listed:
        check(r in docs, f"kustomization.yaml lists {r}, which does not exist")
    for f in files:
        if f not in ("kustomization.yaml", "secret.example.yaml"):
            check(f in listed, f"kustomization.yaml does not list {f}")
    check("secret.example.yaml" not in listed, "the example Secret would be applied")

    applied = [d for f in listed if f in docs for d in docs[f]]
    deployment = one(applied, "Deployment")
    service = one(applied, "Service")
    claim = one(applied, "PersistentVolumeClaim")
    secret = one(docs["secret.example.yaml"], "Secret")

    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    check(deployment["spec"].get("replicas") == 1, "more than one server on one data folder")
    check(deployment["spec"].get("strategy", {}).get("type") == "Recreate",
          "a rolling update would run two servers on one ReadWriteOnce volume")
    check(deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(),
          "the Deployment's selector does not match its pod labels")
    containers = spec["containers"]
    check(len(containers) == 1, "one container expected")
    c = containers[0]
    check(c.get("command") == ["/usr/bin/edgeloop", "server"], f"the container runs {c.get('command')}")

    server_help = subprocess.run([binary, "server", "--help"], check=True, capture_output=True,
                                 text=True).stdout
    args = flag_values(c.get("args", []))
    for name in args:
        check(re.search(r"(^|\s)" + re.escape(name) + r"\b", server_help) is not None,
              f"{name} is no flag of edgeloop server")
    for name in ("--data", "--host", "--port"):
        check(name in args, f"the container does not set {name}")

    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("https") == int(args.get("--port", 0)),
          f"container port {ports.get('https')} is not --port {args.get('--port')}")

    # The probes: routes the server has, on the named port, over HTTPS.
    server_cpp = open(os.path.join(SRC, "src", "cloud", "server.cpp")).read()
    routes = set(re.findall(r'\.Get\("(/v1/[a-z]+)"', server_cpp))
    want = {"startupProbe": "/v1/health", "livenessProbe": "/v1/health", "readinessProbe": "/v1/ready"}
    for probe, path in want.items():
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path, f"{probe} asks for {get.get('path')}, want {path}")
        check(get.get("path") in routes, f"{probe}: the server has no GET {get.get('path')}")
        check(get.get("scheme") == "HTTPS", f"{probe} is not HTTPS (the server speaks TLS only)")
        check(get.get("port") in ports, f"{probe} port {get.get('port')} is no container port")

    # The database URL from the Secret, by the variable the server reads.
    check("Env:EDGELOOP_DB" in server_help, "edgeloop server reads no EDGELOOP_DB")
    env = {e["name"]: e for e in c.get("env", [])}
    ref = env.get("EDGELOOP_DB", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(ref.get("name") == secret["metadata"]["name"],
          f"EDGELOOP_DB comes from Secret {ref.get('name')}, not {secret['metadata']['name']}")
    check(ref.get("key") in secret.get("stringData", {}),
          f"the Secret has no key {ref.get('key')}")
    check(str(secret.get("stringData", {}).get(ref.get("key"), "")).startswith("postgresql://"),
          "the example Secret's URL is not postgresql://")
    check("--db" not in args, "the database URL must not be an argument (it holds a password)")

    # The data folder: the claim, mounted where --data points.
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    data_volume = volumes.get(mounts.get(args.get("--data"), ""), {})
    check(data_volume.get("persistentVolumeClaim", {}).get("claimName") == claim["metadata"]["name"],
          f"--data {args.get('--data')} is not on the claim {claim['metadata']['name']}")
    check("ReadWriteOnce" in claim["spec"].get("accessModes", []), "the claim is not ReadWriteOnce")

    # The server's TLS certificate names --host; in the pod that name is 0.0.0.0.
    aliases = {h: a["ip"] for a in spec.get("hostAliases", []) for h in a.get("hostnames", [])}
    check(aliases.get(args.get("--host")) == "0.0.0.0",
          f"--host {args.get('--host')} does not resolve to 0.0.0.0 in the pod")

    # Nothing privileged; the user of the image.
    pod_sc = spec.get("securityContext", {})
    sc = c.get("securityContext", {})
    check(pod_sc.get("runAsNonRoot") is True, "the pod may run as root")
    check(sc.get("allowPrivilegeEscalation") is False, "privilege escalation allowed")
    check(sc.get("readOnlyRootFilesystem") is True, "the root filesystem is writable")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities not dropped")
    dockerfile = open(os.path.join(SRC, "deploy", "container", "Dockerfile")).read()
    uid = re.search(r"--uid (\d+)", dockerfile)
    check(uid and int(uid.group(1)) == pod_sc.get("runAsUser") == pod_sc.get("fsGroup"),
          "runAsUser and fsGroup are not the image's user id")

    # The Service reaches the pod's port.
    check(service["spec"]["selector"].items() <= pod["metadata"]["labels"].items(),
          "the Service selects no pod of the Deployment")
    for p in service["spec"].get("ports", []):
        check(p.get("targetPort") in ports, f"Service targetPort {p.get('targetPort')} is no container port")

    if shutil.which("kubectl"):
        built = subprocess.run(["kubectl", "kustomize", K8S], capture_output=True, text=True)
        if check(built.returncode == 0, f"kubectl kustomize failed: {built.stderr.strip()}"):
            kinds = sorted(d["kind"] for d in yaml.safe_load_all(built.stdout) if d)
            check(kinds == ["Deployment", "Namespace", "PersistentVolumeClaim", "Service"],
                  f"kubectl kustomize builds {kinds}")
    else:
        print("kubernetes_manifests_test: kubectl not found, `kubectl kustomize` not run")

    if failures:
        stop()
    print(f"kubernetes_manifests_test: ok ({len(files)} files)")


if __name__ == "__main__":
    main()
