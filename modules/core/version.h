/* node's version and the version of its wire protocol (node-protocol(7)). */
#ifndef NODE_VERSION_H
#define NODE_VERSION_H

#define NODE_VERSION "0.1.0"
#define NODE_PROTOCOL_VERSION 1

#endif
