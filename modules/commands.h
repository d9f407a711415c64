/* Every command's node_cmd, for the one table in node.c. */
#ifndef NODE_COMMANDS_H
#define NODE_COMMANDS_H

#include "core/cmd.h"

extern const node_cmd node_cmd_help;
extern const node_cmd node_cmd_version;
extern const node_cmd node_cmd_config;
extern const node_cmd node_cmd_ping;
extern const node_cmd node_cmd_up;
extern const node_cmd node_cmd_broker;
extern const node_cmd node_cmd_worker;
extern const node_cmd node_cmd_submit;
extern const node_cmd node_cmd_result;
extern const node_cmd node_cmd_status;
extern const node_cmd node_cmd_queues;
extern const node_cmd node_cmd_workers;
extern const node_cmd node_cmd_dead;
extern const node_cmd node_cmd_map;
extern const node_cmd node_cmd_revoke;
extern const node_cmd node_cmd_nameserver;
extern const node_cmd node_cmd_ns;
extern const node_cmd node_cmd_rpc;
extern const node_cmd node_cmd_exec;
extern const node_cmd node_cmd_call;
extern const node_cmd node_cmd_token;
extern const node_cmd node_cmd_chan;
extern const node_cmd node_cmd_pub;
extern const node_cmd node_cmd_sub;
extern const node_cmd node_cmd_chanhost;
extern const node_cmd node_cmd_mapreduce;
extern const node_cmd node_cmd_job;

#endif
