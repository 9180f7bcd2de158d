"""Admin tools: live config reload, the `/lukas` command, usage and cost reports, saved metrics for `lukas stats`."""
