"""Test bed helpers: booted systemd nodes, a local release mirror and an ansible-playbook runner."""
