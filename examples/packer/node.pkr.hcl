# A Kubernetes node image with the CNI plugins, containerd's CNI settings and the shared
# /run/netns mount baked in by nodeprep.cni's bake playbook through Packer's ansible provisioner.
# Nothing is started or mounted while baking; the image's first boot brings it all up, and no
# release tarball is left in the image.
#
#   packer init examples/packer/node.pkr.hcl
#   packer validate -var base_image_checksum=sha512:<hex> examples/packer/node.pkr.hcl
#   packer build -var base_image_checksum=sha512:<hex> -var cni_plugins_version=1.9.1 examples/packer/node.pkr.hcl
#
# The provisioner installs the collection named in requirements.yml (one exact version) into
# collections/ next to this file, and ansible-playbook finds it there: bake.yml imports the
# collection's nodeprep.cni.bake playbook. Packer itself needs ansible-core on the machine that runs it.

packer {
  required_version = ">= 1.10.0"
  required_plugins {
    # Checked with packer-plugin-qemu 1.0.9 and packer-plugin-ansible 1.1.2 (tests/integration/test_bake.py).
    qemu = {
      source  = "github.com/hashicorp/qemu"
      version = "~> 1.0"
    }
    ansible = {
      source  = "github.com/hashicorp/ansible"
      version = "~> 1.1"
    }
  }
}

variable "base_image_url" {
  type        = string
  description = "Debian cloud image (qcow2) the node image starts from: Debian 13, the current stable release."
  default     = "https://cloud.debian.org/images/cloud/trixie/latest/debian-13-genericcloud-amd64.qcow2"
}

variable "base_image_checksum" {
  type        = string
  description = "Checksum of the base image as sha512:<hex> (from the image's SHA512SUMS)."
}

variable "cni_plugins_version" {
  type        = string
  description = "CNI plugins release baked into the image."
  default     = "1.9.1"
}

variable "cni_plugins_base_url" {
  type        = string
  description = "Release server, e.g. an air-gapped mirror built by playbooks/mirror.yml."
  default     = "https://github.com/containernetworking/plugins/releases/download"
}

variable "build_password" {
  type        = string
  description = "Password of the debian user on the build VM only (see seed/user-data); locked before the image is written."
  default     = "packer-build-only"
  sensitive   = true
}

source "qemu" "node" {
  iso_url              = var.base_image_url
  iso_checksum         = var.base_image_checksum
  disk_image           = true
  disk_size            = "8G"
  format               = "qcow2"
  output_directory     = "output-node"
  vm_name              = "k8s-node-cni-${var.cni_plugins_version}.qcow2"
  headless             = true
  cd_label             = "cidata"
  cd_files             = ["${path.root}/seed/meta-data", "${path.root}/seed/user-data"]
  communicator         = "ssh"
  ssh_username         = "debian"
  ssh_password         = var.build_password
  ssh_timeout          = "10m"
  shutdown_command     = "sudo shutdown -P now"
}

build {
  sources = ["source.qemu.node"]

  provisioner "ansible" {
    galaxy_file      = "${path.root}/requirements.yml"
    collections_path = "${path.root}/collections"
    playbook_file    = "${path.root}/bake.yml"
    user             = "debian"
    use_proxy        = false
    extra_arguments = [
      "--become",
      "--extra-vars", "cni_plugins_version=${var.cni_plugins_version}",
      "--extra-vars", "cni_plugins_base_url=${var.cni_plugins_base_url}",
      # containerd may not be installed yet when the image is baked: say which dialect to write.
      "--extra-vars", "containerd_runtime=containerd containerd_version=1.7",
    ]
    # ansible-playbook looks for the collection where galaxy_file put it.
    ansible_env_vars = ["ANSIBLE_PIPELINING=True", "ANSIBLE_COLLECTIONS_PATH=${path.root}/collections"]
  }

  provisioner "shell" {
    inline = ["sudo passwd --lock debian"]
  }
}
