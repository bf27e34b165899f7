#!/usr/bin/python3
# tsan: runs (no libdsc in this process: yamllint, YAML, the sources, dsc-stat)
"""The Kubernetes manifests (deploy/kubernetes) against the code. yamllint
(strict, deploy/kubernetes/.yamllint) on every manifest; then every wire
between the manifests, the README's five commands, the Dockerfile and the
code, each fact taken from the code, not written here again: the DSC_* and
AWS_* names the library and dscd read (their string literals), dscd's port
(its default listen address) and options, the path dscd answers "ok" on and
the one it serves metrics on, the mode bits libdsc warns about on a secret
file, the DSC_PEERS forms lib/peer parses, the version, the install prefix.
The ConfigMap's values go through dsc-stat (a context opened with them),
which fails on a value libdsc cannot use. Last, each check is shown to
bite: the manifests broken on purpose one way at a time (a port, a name,
a path, the secret's mode, hostPID, ...), and the code's facts changed one
at a time, must each fail. No cluster is needed, nor used. Run through
tests/run.sh, or alone from the checkout."""
import copy
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy", "kubernetes")
BUILD = os.environ.get("BUILD", "build")

try:
    import yaml
except ImportError:
    sys.exit("FAIL: PyYAML missing (python3-yaml): run scripts/setup.sh")


def read(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


def one(pattern, text, where, flags=0):
    m = re.search(pattern, text, flags)
    if not m:
        sys.exit(f"FAIL: cannot find {pattern!r} in {where}: the test must "
                 "learn where the code says it now")
    return m


# --- what the code says ---

def code_facts():
    f = {}
    sources = (glob.glob(os.path.join(ROOT, "lib", "*", "*.c")) +
               glob.glob(os.path.join(ROOT, "dscd", "*.c")))
    f["env"] = set()
    for path in sources:
        with open(path) as fh:
            f["env"] |= set(re.findall(r'"((?:DSC|AWS)_[A-Z0-9_]+)"', fh.read()))
    main = read("dscd/main.c")
    m = one(r'listen = "([^"]+):(\d+)";', main, "dscd/main.c (the default listen address)")
    f["port"] = int(m.group(2))
    f["dscd_options"] = set(re.findall(r'\{ "([a-z-]+)", (?:required|no)_argument', main))
    server = read("dscd/server.c")
    f["health"] = one(r'strcmp\(url, "(/[^"]+)"\) == 0\)\s*return reply_text\(s, c, 200, "ok',
                      server, "dscd/server.c (the path answered 200 ok)").group(1)
    f["metrics"] = one(r'strcmp\(url, "(/[^"]+)"\) == 0\) \{\s*char \*text = dsc_server_metrics',
                       server, "dscd/server.c (the metrics path)").group(1)
    client = read("lib/peer/client.c")
    m = one(r'read_secret_file\(const char \*path.*?st_mode & (0[0-7]+)\)', client,
            "lib/peer/client.c (the secret file's mode check)", re.S)
    f["secret_mask"] = int(m.group(1), 8)
    f["peer_schemes"] = set()
    for path in glob.glob(os.path.join(ROOT, "lib", "peer", "*.c")):
        with open(path) as fh:
            f["peer_schemes"] |= set(re.findall(r'strncmp\(spec, "([a-z]+):", \d+\)', fh.read()))
    f["version"] = one(r'#define DSC_VERSION_STRING "([^"]+)"', read("include/dsc.h"),
                       "include/dsc.h").group(1)
    mk = read("Makefile")
    f["prefix"] = one(r'^PREFIX\s*\?=\s*(\S+)', mk, "Makefile", re.M).group(1)
    f["bindir"] = one(r'^BINDIR\s*\?=\s*(\S+)', mk, "Makefile", re.M).group(1)
    setup = read("scripts/setup.sh")
    pkgs = one(r'APT_PKGS=\(([^)]*)\)', setup, "scripts/setup.sh").group(1).split()
    # What the build needs of setup's list: the compilers and -dev
    # packages, but cmocka (the unit tests only).
    f["build_pkgs"] = {p for p in pkgs if p in ("build-essential", "pkg-config") or
                       (p.endswith("-dev") and p != "libcmocka-dev")}
    return f


# --- what the manifests, the README and the Dockerfile say ---

def load_manifests():
    docs = []
    for path in sorted(glob.glob(os.path.join(DEPLOY, "*.yaml"))):
        with open(path) as fh:
            for d in yaml.safe_load_all(fh):
                if d:
                    d["_file"] = os.path.basename(path)
                    docs.append(d)
    return docs


def readme_commands():
    text = read("README.md")
    m = one(r'^## Running on Kubernetes\n(.*?)^## ', text, "README.md", re.S | re.M)
    blocks = re.findall(r'```sh\n(.*?)```', m.group(1), re.S)
    for b in blocks:
        lines = [ln.split("   #")[0].strip() for ln in b.splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
        if lines and all("kubectl " in ln for ln in lines):
            return lines
    sys.exit("FAIL: README.md, Running on Kubernetes: no block of kubectl commands")


def find(docs, kind, name=None):
    out = [d for d in docs if d["kind"] == kind and
           (name is None or d["metadata"]["name"] == name)]
    return out


def pods(docs):
    """(label, pod spec, pod template metadata) of each workload."""
    out = []
    for d in docs:
        if d["kind"] in ("DaemonSet", "Job", "Deployment", "StatefulSet"):
            t = d["spec"]["template"]
            out.append((f'{d["kind"]}/{d["metadata"]["name"]}', t["spec"],
                        t.get("metadata", {})))
    return out


def all_containers(spec):
    return ([("init", c) for c in spec.get("initContainers", [])] +
            [("main", c) for c in spec.get("containers", [])])


def volume(spec, name):
    for v in spec.get("volumes", []):
        if v["name"] == name:
            return v
    return None


def mount_of(container, path):
    """(volumeMount, rest) of the mount that holds path, deepest first."""
    best = None
    for vm in container.get("volumeMounts", []):
        mp = vm["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if not best or len(mp) > len(best[0]["mountPath"].rstrip("/")):
                best = (vm, path[len(mp):].lstrip("/"))
    return best


def env_list(container):
    return container.get("env", [])


def env_value(container, configmaps, name):
    """The value name has in container: its env, else its ConfigMaps."""
    for e in env_list(container):
        if e["name"] == name:
            return e.get("value")
    for ef in container.get("envFrom", []):
        ref = ef.get("configMapRef")
        if ref and ref["name"] in configmaps and name in configmaps[ref["name"]]:
            return str(configmaps[ref["name"]][name])
    return None


def port_number(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def check(docs, facts, commands, dockerfile):
    """Every wire; a list of what is wrong (empty: all right)."""
    errs = []
    err = errs.append
    port = facts["port"]
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in find(docs, "ConfigMap")}
    namespaces = [d["metadata"]["name"] for d in find(docs, "Namespace")]
    daemonsets = find(docs, "DaemonSet")
    services = find(docs, "Service")
    workloads = pods(docs)
    if len(namespaces) != 1 or len(daemonsets) != 1 or len(services) != 1 or \
            len(configmaps) != 1 or not find(docs, "Job"):
        return [f"want one Namespace, DaemonSet, Service, ConfigMap and a Job; found "
                f"{sorted(d['kind'] for d in docs)}"]
    ns = namespaces[0]
    ds, svc = daemonsets[0], services[0]
    cm_name = next(iter(configmaps))
    cm = configmaps[cm_name]

    # Objects in the namespace; its Pod Security level allows the host*.
    for d in docs:
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != ns:
            err(f'{d["_file"]}: {d["kind"]}/{d["metadata"]["name"]} is not in namespace {ns}')
    labels = find(docs, "Namespace")[0]["metadata"].get("labels", {})
    if labels.get("pod-security.kubernetes.io/enforce") != "privileged":
        err("namespace: pods with hostPath, hostNetwork and hostPID need the Pod "
            "Security level 'privileged'")

    # Names: every DSC_*/AWS_* set is one the code reads; no secret inline.
    set_names = [(f"ConfigMap {cm_name}", k) for k in cm]
    for label, spec, _ in workloads:
        for _, c in all_containers(spec):
            set_names += [(f'{label} {c["name"]}', e["name"]) for e in env_list(c)]
    for where, name in set_names:
        if re.match(r'(DSC|AWS)_', name) and name not in facts["env"]:
            err(f"{where}: {name} is not a variable the library or dscd reads")
        if name in ("DSC_PEER_SECRET", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            err(f"{where}: {name} inline: secrets come from a Secret (a file, or secretRef)")

    # Every pod: the same image, of this version; the same uid; hostPID.
    uid = gid = None
    for label, spec, _ in workloads:
        sc = spec.get("securityContext", {})
        if uid is None:
            uid, gid = sc.get("runAsUser"), sc.get("runAsGroup")
        if sc.get("runAsUser") != uid or sc.get("runAsGroup") != gid or \
                sc.get("fsGroup") != gid:
            err(f"{label}: runAsUser/runAsGroup/fsGroup {sc.get('runAsUser')}/"
                f"{sc.get('runAsGroup')}/{sc.get('fsGroup')}, not the cache's {uid}/{gid} "
                "(the cache refuses another uid's directory)")
        if sc.get("runAsNonRoot") is not True:
            err(f"{label}: runAsNonRoot is not true")
        if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            err(f"{label}: seccompProfile is not RuntimeDefault")
        if spec.get("hostPID") is not True:
            err(f"{label}: hostPID is not true (LMDB keys its reader table by pid: "
                "pids of pods in their own PID namespaces collide)")
        for kind, c in all_containers(spec):
            img = c.get("image", "")
            if not img.endswith(":" + facts["version"]):
                err(f'{label} {c["name"]}: image {img} is not libdsc {facts["version"]}')
            csc = c.get("securityContext", {})
            if csc.get("allowPrivilegeEscalation") is not False or \
                    csc.get("readOnlyRootFilesystem") is not True or \
                    "ALL" not in csc.get("capabilities", {}).get("drop", []) or \
                    csc.get("privileged"):
                err(f'{label} {c["name"]}: securityContext must drop ALL capabilities, '
                    "forbid privilege escalation, have a read-only root filesystem")
            added = set(csc.get("capabilities", {}).get("add", []))
            root = csc.get("runAsUser") == 0
            if "runAsUser" in csc and not root and csc["runAsUser"] != uid:
                err(f'{label} {c["name"]}: runs as {csc["runAsUser"]}, not {uid}')
            if root or added:
                # Only the init container that gives the cache directory to
                # the uid may be root, with CHOWN and FOWNER alone.
                cmd = " ".join(c.get("command", []) + c.get("args", []))
                hp = [vm for vm in c.get("volumeMounts", [])
                      if (volume(spec, vm["name"]) or {}).get("hostPath")]
                d = hp[0]["mountPath"] if hp else None
                if kind != "init" or not root or not added <= {"CHOWN", "FOWNER"} or \
                        not d or f"chown {uid}:{gid} {d}" not in cmd or \
                        f"chmod 0700 {d}" not in cmd:
                    err(f'{label} {c["name"]}: root or added capabilities, and not '
                        f"the init container that chowns the cache to {uid}:{gid}, 0700")
            res = c.get("resources", {})
            if not {"cpu", "memory"} <= set(res.get("requests", {})) or \
                    "memory" not in res.get("limits", {}):
                err(f'{label} {c["name"]}: resources want cpu and memory requests and '
                    "a memory limit")

    # The Dockerfile: Debian, make install, its user is the cache's uid,
    # the build packages setup.sh installs for the build.
    if not re.search(r'^FROM debian:', dockerfile, re.M):
        err("Dockerfile: not FROM debian")
    if not re.search(r'make install', dockerfile):
        err("Dockerfile: does not build with make install")
    if not re.search(rf'^USER {uid}:{gid}$', dockerfile, re.M) or \
            not re.search(rf'useradd -u {uid} -g {gid}', dockerfile):
        err(f"Dockerfile: its user is not {uid}:{gid}, the manifests' runAsUser")
    for p in sorted(facts["build_pkgs"]):
        if not re.search(rf'\s{re.escape(p)}(\s|\\)', dockerfile):
            err(f"Dockerfile: the build stage lacks {p} (scripts/setup.sh's build packages)")
    pm = re.search(r'make install PREFIX=(\S+)', dockerfile)
    prefix = pm.group(1) if pm else facts["prefix"]
    dscd_bin = facts["bindir"].replace("$(PREFIX)", prefix) + "/dscd"

    # The cache: DSC_CACHE_DIR is the mount of one hostPath, the same in
    # every pod; dscd's makes it, the others wait for it.
    cache_dir = cm.get("DSC_CACHE_DIR")
    host_paths = set()
    for label, spec, _ in workloads:
        main = spec["containers"][0]
        d = env_value(main, configmaps, "DSC_CACHE_DIR")
        mt = mount_of(main, d) if d else None
        v = volume(spec, mt[0]["name"]) if mt else None
        if not d or d != cache_dir or not v or mt[1] or "hostPath" not in v:
            err(f"{label}: DSC_CACHE_DIR {d} is not the mount of a hostPath volume")
            continue
        host_paths.add(v["hostPath"]["path"])
        want = "DirectoryOrCreate" if label.startswith("DaemonSet") else "Directory"
        if v["hostPath"].get("type") != want:
            err(f"{label}: the cache's hostPath type is not {want}")
        if mt[0].get("readOnly"):
            err(f"{label}: the cache is mounted read-only (readers write it too)")
    if len(host_paths) > 1:
        err(f"the pods mount different host directories as the cache: {sorted(host_paths)}")

    # DSC_SELF: "$(HOST_IP):port", HOST_IP from status.hostIP, defined first.
    for label, spec, _ in workloads:
        main = spec["containers"][0]
        env = env_list(main)
        names = [e["name"] for e in env]
        self_ = env_value(main, configmaps, "DSC_SELF")
        m = re.fullmatch(r'\$\((\w+)\):(\d+)', self_ or "")
        if not m:
            err(f"{label}: DSC_SELF {self_!r} is not $(VAR):PORT from the downward API")
            continue
        var = m.group(1)
        src = [e for e in env if e["name"] == var]
        if int(m.group(2)) != port:
            err(f"{label}: DSC_SELF port {m.group(2)}, dscd's is {port}")
        if not src or src[0].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") \
                != "status.hostIP" or names.index(var) > names.index("DSC_SELF"):
            err(f"{label}: {var} must come before DSC_SELF, from status.hostIP")

    # The peer secret: DSC_PEER_SECRET_FILE is a file no group or other can
    # read, the README's Secret's key, copied by an init container.
    secret_cmd = [c for c in commands if "create secret" in c]
    sname = skey = None
    if len(secret_cmd) == 1:
        m = re.search(r'create secret generic (\S+) .*--from-file=([^=\s]+)=', secret_cmd[0])
        if m:
            sname, skey = m.groups()
    if not sname:
        err("README: no `kubectl create secret generic NAME --from-file=KEY=...` command")
    for label, spec, _ in workloads:
        main = spec["containers"][0]
        path = env_value(main, configmaps, "DSC_PEER_SECRET_FILE")
        if not path:
            err(f"{label}: no DSC_PEER_SECRET_FILE")
            continue
        mt = mount_of(main, path)
        v = volume(spec, mt[0]["name"]) if mt else None
        if not v:
            err(f"{label}: DSC_PEER_SECRET_FILE {path} is on no volume")
            continue
        if "secret" in v:
            mode = v["secret"].get("defaultMode", 0o644)
            if spec.get("securityContext", {}).get("fsGroup") is not None:
                mode |= 0o440     # kubelet's doing under fsGroup
            err(f"{label}: DSC_PEER_SECRET_FILE {path} is the Secret's own file, mode "
                f"{mode:o}, which libdsc warns about: copy it")
            continue
        if "emptyDir" not in v:
            err(f"{label}: DSC_PEER_SECRET_FILE {path} is on a {sorted(v)} volume")
            continue
        writers = []
        for kind, c in all_containers(spec):
            if kind != "init":
                continue
            cm_ = [vm for vm in c.get("volumeMounts", []) if vm["name"] == v["name"]]
            if not cm_:
                continue
            dest = cm_[0]["mountPath"].rstrip("/") + "/" + mt[1]
            cmd = c.get("command", []) + c.get("args", [])
            if len(cmd) == 5 and cmd[0] == "install" and cmd[1] == "-m" and cmd[4] == dest:
                writers.append((c, cmd))
        if len(writers) != 1:
            err(f"{label}: no init container writes {path} (install -m MODE SRC DEST "
                "into the same emptyDir)")
            continue
        c, cmd = writers[0]
        if int(cmd[2], 8) & facts["secret_mask"]:
            err(f"{label}: {path} is made mode {cmd[2]}: libdsc warns on mode bits "
                f"{facts['secret_mask']:03o}")
        smt = mount_of(c, cmd[3])
        sv = volume(spec, smt[0]["name"]) if smt else None
        items = (sv or {}).get("secret", {}).get("items", [])
        key = [i["key"] for i in items if i["path"] == smt[1]] if smt else []
        if not sv or "secret" not in sv or sv["secret"]["secretName"] != sname or \
                (key or [smt[1]])[0] != skey:
            err(f"{label}: the secret copied from {cmd[3]} is not the key {skey} of the "
                f"Secret {sname} the README makes")

    # dscd: its binary, its options, one port everywhere, probes, metrics.
    spec = ds["spec"]["template"]["spec"]
    meta = ds["spec"]["template"].get("metadata", {})
    c = spec["containers"][0]
    cmd = c.get("command", []) + c.get("args", [])
    if not cmd or cmd[0] != dscd_bin:
        err(f"DaemonSet: runs {cmd[:1]}, the image has dscd at {dscd_bin}")
    for a in cmd[1:]:
        if a.startswith("--") and a[2:].split("=")[0] not in facts["dscd_options"]:
            err(f"DaemonSet: dscd has no option {a}")
    if spec.get("hostNetwork") is not True:
        err("DaemonSet: not hostNetwork (its peer name is the node's address)")
    if spec.get("hostNetwork") and spec.get("dnsPolicy") != "ClusterFirstWithHostNet":
        err("DaemonSet: hostNetwork wants dnsPolicy ClusterFirstWithHostNet")
    ports = c.get("ports", [])
    if len(ports) != 1 or ports[0]["containerPort"] != port or \
            ports[0].get("hostPort", port) != port:
        err(f"DaemonSet: its port is not dscd's {port}: {ports}")
    for probe in ("readinessProbe", "livenessProbe"):
        g = c.get(probe, {}).get("httpGet", {})
        if g.get("path") != facts["health"] or port_number(c, g.get("port")) != port:
            err(f"DaemonSet: {probe} is not GET {facts['health']} on {port}: {g}")
    ann = meta.get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true" or \
            ann.get("prometheus.io/port") != str(port) or \
            ann.get("prometheus.io/path") != facts["metrics"]:
        err(f"DaemonSet: the scrape annotations are not {facts['metrics']} on {port}: {ann}")
    sa = spec.get("serviceAccountName")
    if sa and not find(docs, "ServiceAccount", sa):
        err(f"DaemonSet: no ServiceAccount {sa}")
    for label, pspec, _ in workloads:
        for _, cc in all_containers(pspec):
            refs = [e["configMapRef"]["name"] for e in cc.get("envFrom", [])
                    if "configMapRef" in e]
            if cc in pspec["containers"] and refs != [cm_name]:
                err(f"{label} {cc['name']}: takes ConfigMaps {refs}, not {cm_name}")

    # The headless Service: selects dscd, its port is dscd's and is named.
    sspec = svc["spec"]
    plabels = meta.get("labels", {})
    if sspec.get("clusterIP") != "None":
        err("Service: not headless (clusterIP: None): DNS must give every node's address")
    if not sspec.get("selector") or \
            any(plabels.get(k) != v for k, v in sspec["selector"].items()):
        err("Service: its selector does not select dscd's pods")
    sports = sspec.get("ports", [])
    if len(sports) != 1 or sports[0]["port"] != port or \
            port_number(c, sports[0].get("targetPort", port)) != port:
        err(f"Service: its port is not dscd's {port}: {sports}")

    # DSC_PEERS names that Service, in a form lib/peer parses.
    peers = str(cm.get("DSC_PEERS", ""))
    svc_dns = f'{svc["metadata"]["name"]}.{ns}.svc'
    m = re.fullmatch(r'dns:([^:]+):(\d+)', peers)
    s = re.fullmatch(r'srv:_([a-z0-9-]+)\._tcp\.(.+)', peers)
    if m:
        if "dns" not in facts["peer_schemes"]:
            err("ConfigMap: DSC_PEERS=dns:... but lib/peer does not parse dns:")
        if not (m.group(1) == svc_dns or m.group(1).startswith(svc_dns + ".")):
            err(f"ConfigMap: DSC_PEERS resolves {m.group(1)}, not the Service {svc_dns}")
        if int(m.group(2)) != port:
            err(f"ConfigMap: DSC_PEERS port {m.group(2)}, dscd's is {port}")
    elif s:
        if "srv" not in facts["peer_schemes"]:
            err("ConfigMap: DSC_PEERS=srv:... but lib/peer does not parse srv:")
        if not (s.group(2) == svc_dns or s.group(2).startswith(svc_dns + ".")) or \
                s.group(1) not in [p.get("name") for p in sports]:
            err(f"ConfigMap: DSC_PEERS {peers} is not a named port of the Service {svc_dns}")
    else:
        err(f"ConfigMap: DSC_PEERS {peers!r} is not dns:SERVICE:PORT or srv:_PORT._tcp.SERVICE")

    # The README's five commands: the namespace, the secret, every manifest.
    if len(commands) != 5:
        err(f"README: {len(commands)} commands to deploy, not five")
    applied = set()
    for cmd in commands:
        for f in re.findall(r'-f (\S+)', cmd):
            if not os.path.isfile(os.path.join(ROOT, f)):
                err(f"README: {cmd}: no file {f}")
            applied.add(os.path.basename(f))
        m = re.search(r'kubectl -n (\S+)', cmd)
        if m and m.group(1) != ns:
            err(f"README: {cmd}: namespace {m.group(1)}, not {ns}")
    for f in sorted({d["_file"] for d in docs} - applied):
        err(f"README: the commands do not apply {f}")
    return errs


def check_values(cm):
    """The ConfigMap's values through libdsc: dsc-stat opens a context with
    them (DSC_CACHE_DIR a new directory here, DSC_PEERS left out: its form
    is checked above and resolving it needs the cluster's DNS)."""
    stat = os.path.join(ROOT, BUILD, "bin", "dsc-stat")
    if not os.access(stat, os.X_OK):
        return [f"{stat} missing: build first (make)"]
    tmp = tempfile.mkdtemp(prefix="dsc-k8s-")
    try:
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "DSC_ANONYMOUS": "1",
               "AWS_EC2_METADATA_DISABLED": "true"}
        # A sanitizer build's options (make test-asan, test-tsan) go along.
        env.update({k: v for k, v in os.environ.items() if k.endswith("SAN_OPTIONS")})
        env.update({k: str(v) for k, v in cm.items() if k != "DSC_PEERS"})
        env["DSC_CACHE_DIR"] = os.path.join(tmp, "cache")
        r = subprocess.run([stat, "--create"], env=env, capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0 or "is not valid" in r.stderr:
            return [f"ConfigMap values refused by libdsc: {r.stderr.strip()}"]
        return []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def yamllint():
    exe = shutil.which("yamllint")
    if not exe:
        return ["yamllint missing: scripts/setup.sh installs it"]
    files = sorted(glob.glob(os.path.join(DEPLOY, "*.yaml"))) + [os.path.join(DEPLOY, ".yamllint")]
    r = subprocess.run([exe, "--strict", "-f", "parsable", "-c",
                        os.path.join(DEPLOY, ".yamllint")] + files,
                       capture_output=True, text=True)
    if r.returncode != 0:
        return ["yamllint: " + ln for ln in (r.stdout + r.stderr).strip().splitlines()]
    return []


# --- each check bites: the manifests broken on purpose ---

def _get(docs, kind):
    return [d for d in docs if d["kind"] == kind][0]


def _pod(docs, kind):
    return _get(docs, kind)["spec"]["template"]["spec"]


def _env(docs, kind, name):
    return [e for e in _pod(docs, kind)["containers"][0]["env"] if e["name"] == name][0]


def _cm(docs):
    return _get(docs, "ConfigMap")["data"]


def _rename(d, old, new):
    d[new] = d.pop(old)


BREAKS = [
    ("a ConfigMap name the code does not read",
     lambda d: _rename(_cm(d), "DSC_CACHE_SIZE", "DSC_CACHE_BYTES"), "not a variable"),
    ("dscd's port", lambda d: _pod(d, "DaemonSet")["containers"][0]["ports"][0]
     .update(containerPort=7071, hostPort=7071), "port"),
    ("the Service's port", lambda d: _get(d, "Service")["spec"]["ports"][0]
     .update(port=7071), "Service: its port"),
    ("DSC_PEERS' port", lambda d: _cm(d).update(
        DSC_PEERS=_cm(d)["DSC_PEERS"].rsplit(":", 1)[0] + ":7071"), "DSC_PEERS port"),
    ("DSC_PEERS' service", lambda d: _cm(d).update(
        DSC_PEERS="dns:other.dsc.svc.cluster.local:7070"), "not the Service"),
    ("DSC_SELF's port", lambda d: _env(d, "Job", "DSC_SELF")
     .update(value="$(HOST_IP):7071"), "DSC_SELF port"),
    ("HOST_IP after DSC_SELF", lambda d: _pod(d, "Job")["containers"][0]["env"]
     .sort(key=lambda e: e["name"] == "HOST_IP"), "must come before"),
    ("the readiness probe's path", lambda d: _pod(d, "DaemonSet")["containers"][0]
     ["readinessProbe"]["httpGet"].update(path="/health"), "readinessProbe"),
    ("the liveness probe's port", lambda d: _pod(d, "DaemonSet")["containers"][0]
     ["livenessProbe"]["httpGet"].update(port=8080), "livenessProbe"),
    ("the scrape path", lambda d: _get(d, "DaemonSet")["spec"]["template"]["metadata"]
     ["annotations"].update({"prometheus.io/path": "/metric"}), "scrape"),
    ("DSC_PEER_SECRET_FILE", lambda d: _env(d, "Job", "DSC_PEER_SECRET_FILE")
     .update(value="/run/dsc/secret"), "writes"),
    ("the secret's mode", lambda d: _pod(d, "DaemonSet")["initContainers"][1]["command"]
     .__setitem__(2, "0440"), "warns"),
    ("the Secret's own file", lambda d: (
        _env(d, "DaemonSet", "DSC_PEER_SECRET_FILE").update(value="/etc/dsc/secret/peer-secret"),
        _pod(d, "DaemonSet")["containers"][0]["volumeMounts"].append(
            {"name": "peer-secret", "mountPath": "/etc/dsc/secret", "readOnly": True})),
     "Secret's own file, mode 440"),
    ("DSC_CACHE_DIR", lambda d: _cm(d).update(DSC_CACHE_DIR="/var/cache/dsc2"),
     "not the mount of a hostPath"),
    ("the cache's hostPath type", lambda d: _pod(d, "Job")["volumes"][0]["hostPath"]
     .update(type="DirectoryOrCreate"), "type is not Directory"),
    ("the README's secret name", lambda d: _pod(d, "Job")["volumes"][1]["secret"]
     .update(secretName="peer"), "the README makes"),
    ("an inline secret", lambda d: _pod(d, "Job")["containers"][0]["env"]
     .append({"name": "DSC_PEER_SECRET", "value": "x"}), "inline"),
    ("hostPID", lambda d: _pod(d, "Job").pop("hostPID"), "hostPID"),
    ("the uid", lambda d: _pod(d, "Job")["securityContext"].update(runAsUser=1000),
     "runAsUser"),
    ("the cache path", lambda d: _pod(d, "Job")["volumes"][0]["hostPath"]
     .update(path="/var/cache/other"), "different host directories"),
    ("a capability", lambda d: _pod(d, "Job")["containers"][0]["securityContext"]
     ["capabilities"].update(add=["SYS_ADMIN"]), "capabilities"),
    ("the image's version", lambda d: _pod(d, "Job")["containers"][0]
     .update(image="registry.example.com/libdsc:0.0.9"), "image"),
    ("a dscd option", lambda d: _pod(d, "DaemonSet")["containers"][0]
     .update(args=["--listen-port=7070"]), "no option"),
]


# ... and when the code changes under them: the same manifests against
# facts as if the code said otherwise.
CODE_CHANGES = [
    ("dscd's default port", lambda f: f.update(port=7071), "7071"),
    ("the health path", lambda f: f.update(health="/health"), "readinessProbe"),
    ("the metrics path", lambda f: f.update(metrics="/stats"), "scrape"),
    ("a variable no longer read", lambda f: f["env"].discard("DSC_CHUNK_SIZE"),
     "DSC_CHUNK_SIZE is not a variable"),
    ("no dns: peers", lambda f: f["peer_schemes"].discard("dns"), "does not parse dns:"),
    ("a stricter secret mask", lambda f: f.update(secret_mask=0o477), "warns"),
    ("a new version", lambda f: f.update(version="0.2.0"), "is not libdsc 0.2.0"),
    ("dscd installed elsewhere", lambda f: f.update(bindir="$(PREFIX)/sbin"),
     "the image has dscd at"),
]


def main():
    facts = code_facts()
    docs = load_manifests()
    commands = readme_commands()
    dockerfile = read("deploy/kubernetes/Dockerfile")
    print(f"code: dscd port {facts['port']}, health {facts['health']}, metrics "
          f"{facts['metrics']}, {len(facts['env'])} variables read, secret mask "
          f"{facts['secret_mask']:03o}, DSC_PEERS forms {sorted(facts['peer_schemes'])}, "
          f"version {facts['version']}")
    print(f"manifests: {', '.join(d['kind'] + '/' + d['metadata']['name'] for d in docs)}")
    failed = 0
    wiring = check(docs, facts, commands, dockerfile)
    for what, errs in (("yamllint --strict", yamllint()),
                       ("wiring against the code", wiring),
                       ("ConfigMap values through dsc-stat",
                        check_values(_cm(docs)))):
        for e in errs:
            print(f"  FAIL {e}")
        print(f"{'FAIL' if errs else 'ok  '} {what}")
        failed += bool(errs)
    if wiring:
        print("(the checks' own test not run: it breaks manifests that pass)")
        return 1
    # Each way of breaking the wiring must be caught, by the check meant
    # for it (the expected words in one of the errors).
    missed = []
    for what, breakit, expect in BREAKS:
        broken = copy.deepcopy(docs)
        breakit(broken)
        errs = check(broken, facts, commands, dockerfile)
        if not any(expect in e for e in errs):
            missed.append(f"{what}: not caught (errors: {errs})")
    for what, change, expect in CODE_CHANGES:
        changed = copy.deepcopy(facts)
        change(changed)
        errs = check(docs, changed, commands, dockerfile)
        if not any(expect in e for e in errs):
            missed.append(f"code change, {what}: not caught (errors: {errs})")
    for m in missed:
        print(f"  FAIL {m}")
    print(f"{'FAIL' if missed else 'ok  '} {len(BREAKS)} broken wirings and "
          f"{len(CODE_CHANGES)} code changes, each caught")
    failed += bool(missed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
