# tflint with its bundled terraform ruleset only (the AWS ruleset plugin is not
# installable offline; the schema-replay validate/plan covers AWS arguments).
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}
