/* node version (also --version): node's version and the versions of the
 * libraries it was built with and runs with. */
#include <cjson/cJSON.h>
#include <lz4.h>
#include <mbedtls/version.h>
#include <nng/nng.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>

#include "commands.h"

static int version_main(node_ctx *ctx, const node_args *a)
{
	(void)ctx;
	(void)a;
	char mbed[32];
	mbedtls_version_get_string(mbed);
	printf("node %s (protocol %d)\n", NODE_VERSION, NODE_PROTOCOL_VERSION);
	printf("nng %s (built with %d.%d.%d, TLS engine %s)\n", nng_version(), NNG_MAJOR_VERSION, NNG_MINOR_VERSION,
	    NNG_PATCH_VERSION, nng_tls_engine_name());
	printf("cJSON %s (built with %d.%d.%d)\n", cJSON_Version(), CJSON_VERSION_MAJOR, CJSON_VERSION_MINOR, CJSON_VERSION_PATCH);
	printf("lz4 %s (built with %s)\n", LZ4_versionString(), LZ4_VERSION_STRING);
	printf("mbedtls %s (built with %s)\n", mbed, MBEDTLS_VERSION_STRING);
	return 0;
}

const node_cmd node_cmd_version = {
	.name = "version",
	.summary = "print the versions of node and of the libraries it uses",
	.synopsis = "",
	.main = version_main,
	.max_pos = 0,
	.own_config = 1,
};
