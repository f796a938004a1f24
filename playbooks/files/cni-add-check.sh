#!/bin/sh
# A real CNI ADD and DEL with the node's bridge and host-local plugins, entirely inside a private
# mount and network namespace: the bridge, the veth pair, the pod namespace and host-local's
# address store all vanish with it, so the node's own network is never touched.
# Usage: cni-add-check.sh <plugin dir>
set -eu
plugin_dir=${1:?usage: cni-add-check.sh <plugin dir>}
exec unshare --mount --net --propagation private /bin/sh -eu -c '
plugin_dir=$1
mkdir -p /run/netns
mount -t tmpfs nodeprep-cni-check /run/netns
ip link set lo up
ip netns add pod
config="{\"cniVersion\": \"0.4.0\", \"name\": \"nodeprep-upgrade-check\", \"type\": \"bridge\",
  \"bridge\": \"npcheck0\", \"isGateway\": false, \"ipMasq\": false,
  \"ipam\": {\"type\": \"host-local\", \"subnet\": \"10.254.254.0/24\", \"dataDir\": \"/run/netns/.ipam\"}}"
run() {
  printf "%s" "$config" | env CNI_COMMAND="$1" CNI_CONTAINERID=nodeprep-upgrade-check \
    CNI_NETNS=/run/netns/pod CNI_IFNAME=eth0 CNI_PATH="$plugin_dir" "$plugin_dir/bridge"
}
run ADD >/run/netns/.add-result || { echo "bridge ADD failed: $(cat /run/netns/.add-result)" >&2; exit 1; }
ip netns exec pod ip -4 -o addr show dev eth0 | grep -q "10.254.254." \
  || { echo "bridge ADD gave the pod no address: $(cat /run/netns/.add-result)" >&2; exit 1; }
run DEL >/dev/null || { echo "bridge DEL failed" >&2; exit 1; }
echo "bridge ADD and DEL succeeded through $plugin_dir"
' nodeprep-cni-check "$plugin_dir"
