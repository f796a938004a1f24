# Sphinx configuration for the nodeprep.cni documentation site; tools/docs renders the
# collection's module and role docs into docs/rst with antsibull-docs, then builds docs/build.
project = 'nodeprep.cni'
copyright = 'nodeprep.cni contributors'
title = 'nodeprep.cni documentation'
html_short_title = 'nodeprep.cni'

extensions = ['sphinx.ext.intersphinx', 'sphinx_antsibull_ext']
pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'
html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
display_version = False
html_use_modindex = False
html_use_index = False
html_copy_source = False
default_role = 'any'
# Every reference must resolve; the build runs offline, so no intersphinx inventories.
nitpicky = True
# Labels of Ansible's own docsite that antsibull-docs links to; they resolve only through the
# online intersphinx inventory, which an offline build cannot fetch.
nitpick_ignore = [
    ('ref', 'ansible_configuration_settings'),
    ('ref', 'common_return_values'),
    ('ref', 'action_plugins'),
]
