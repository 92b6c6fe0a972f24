#!/usr/bin/env bash
# Installs, with apt-get, the Debian packages myrelay's demo, benchmark and tests run, and only
# those that are missing: quick and silent when everything is in place, so other scripts call it
# first. Without root (or without apt-get) it installs nothing and prints the exact command.
#
#   bash scripts/install-deps.sh [GROUP...]      (default: demo)
#
#   demo     mariadb-server, mariadb-client: `myrelay-demo` and every test's throwaway backends
#   bench    demo + sysbench, haproxy, python3: bench/run and tests/bench_smoke.rs
#   clients  the client matrix's runtimes: Java + MariaDB Connector/J, Node.js + npm, python3-venv
#   browser  chromium, chromium-driver, Node.js + npm: tests/console_browser.rs
#   test     all of the above: what `cargo test` and .ci/run need
set -euo pipefail

groups=("$@")
[ "${#groups[@]}" -gt 0 ] || groups=(demo)

need=()
add() {
  local p
  for p in "${need[@]}"; do [ "$p" = "$1" ] && return 0; done
  need+=("$1")
}
# `has NAME [PATH]`: NAME runs from PATH, or PATH (e.g. in /usr/sbin, often not in a user's PATH)
# is executable.
has() {
  command -v "$1" >/dev/null 2>&1 || { [ -n "${2:-}" ] && [ -x "$2" ]; }
}

check() {
  case "$1" in
    demo)
      has mariadbd /usr/sbin/mariadbd || add mariadb-server
      has mariadb-install-db /usr/bin/mariadb-install-db || add mariadb-server
      has mariadb || add mariadb-client
      ;;
    bench)
      check demo
      has sysbench || add sysbench
      has haproxy /usr/sbin/haproxy || add haproxy
      has python3 || add python3
      ;;
    clients)
      has java || add default-jre-headless
      [ -f /usr/share/java/mariadb-java-client.jar ] || add libmariadb-java
      has node || add nodejs
      has npm || add npm
      python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || add python3-venv
      ;;
    browser)
      [ -x /usr/bin/chromium ] || add chromium
      [ -x /usr/bin/chromedriver ] || add chromium-driver
      has node || add nodejs
      has npm || add npm
      ;;
    test)
      check bench
      check clients
      check browser
      ;;
    *)
      echo "install-deps.sh: unknown group '$1' (demo, bench, clients, browser, test)" >&2
      exit 2
      ;;
  esac
}
for g in "${groups[@]}"; do check "$g"; done

[ "${#need[@]}" -eq 0 ] && exit 0

apt_line="apt-get install -y --no-install-recommends ${need[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps.sh: missing ${need[*]} (Debian package names), and there is no apt-get here;" >&2
  echo "install them with this system's package manager." >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: missing ${need[*]}; as root, run:" >&2
  echo "  sudo bash $0 ${groups[*]}" >&2
  echo "(or: sudo apt-get update && sudo $apt_line)" >&2
  exit 1
fi
echo "install-deps.sh: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
