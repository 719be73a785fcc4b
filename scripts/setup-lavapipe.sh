#!/usr/bin/env bash
# Fetches Mesa lavapipe 25 (Debian bookworm-backports) into a private folder without touching the system's Mesa,
# and writes an ICD json for it. Lavapipe 25 is the one software Vulkan driver that Dawn accepts with shader-f16,
# so the f16-weight path is tested on it. Usage: scripts/setup-lavapipe.sh [DEST] (default .cache/lavapipe).
# Needs root for apt-get (libvulkan1 and bookworm's mesa-vulkan-drivers supply the loader and the LLVM runtime).
set -euo pipefail
dest=$(realpath -m "${1:-.cache/lavapipe}")
if [ -f "$dest/lvp_icd.json" ]; then echo "lavapipe already at $dest"; exit 0; fi
mkdir -p "$dest/debs" "$dest/lists/partial"
apt-get install -y -q libvulkan1 mesa-vulkan-drivers >/dev/null
src="$dest/backports.list"
uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
echo "deb ${uri:-http://deb.debian.org/debian} bookworm-backports main" > "$src"
opts=(-o Dir::Etc::SourceList="$src" -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$dest/lists")
apt-get "${opts[@]}" -q update >/dev/null
(cd "$dest/debs" && apt-get "${opts[@]}" -q download \
  mesa-vulkan-drivers/bookworm-backports libdrm2/bookworm-backports libdrm-amdgpu1/bookworm-backports >/dev/null)
for deb in "$dest"/debs/*.deb; do dpkg -x "$deb" "$dest/root"; done
lib="$dest/root/usr/lib/x86_64-linux-gnu"
cat > "$dest/lvp_icd.json" <<JSON
{"file_format_version":"1.0.1","ICD":{"library_path":"$lib/libvulkan_lvp.so","api_version":"1.4.305"}}
JSON
echo "lavapipe ready: VK_ICD_FILENAMES=$dest/lvp_icd.json LD_LIBRARY_PATH=$lib"
