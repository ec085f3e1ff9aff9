#!/bin/sh
# Install into /opt/titan during an image build:
#   install.sh deps cpu|cuda   the dependencies listed in /src/pyproject.toml
#   install.sh titan           Titan itself from /src (no dependencies)
# pip trusts the build machine's CA bundle when the build passed one.
set -e
if [ -s /etc/titan-build-ca.pem ]; then export PIP_CERT=/etc/titan-build-ca.pem; fi
case "$1" in
  deps)
    python3 /etc/titan-build/requirements.py "$2" /src/pyproject.toml >/tmp/requirements.txt
    pip install -r /tmp/requirements.txt
    ;;
  titan)
    pip install --no-deps /src
    rm -rf /src/build
    ;;
  *)
    echo "usage: install.sh deps cpu|cuda | install.sh titan" >&2
    exit 2
    ;;
esac
