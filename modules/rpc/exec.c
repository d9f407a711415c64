/* Remote execution (placeholder until the exec service lands). */
#include "rpc/rpc.h"

static const rpc_method exec_methods[] = {
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};

const rpc_kind rpc_kind_exec = {
	.name = "exec",
	.doc = "start(argv), read(id), kill(id)",
	.methods = exec_methods,
	.concurrent = 1,
};
