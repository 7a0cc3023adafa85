// SPDX-License-Identifier: GPL-2.0
/*
 * Engine model "softirq": thesis 6.5, the last of fig. 6.12's models,
 * "kthr ksirq-nrx" (the engine run in the NET_RX softirq context).
 *
 * There is nothing to schedule: the eth block's rx handler runs in the
 * NET_RX softirq of the device's NAPI poll, and it calls the engine, which
 * runs the packet through every block before the handler returns.  No
 * queue, no thread, no context switch: LANA gets the CPU exactly when the
 * Linux stack would have got it for the same packet.  The thesis measured
 * 1.3-1.4 Mpps against Linux's 1.38 Mpps with it.  The default model.
 */
#include "internal.h"

const struct lana_engine lana_engine_softirq = {
	.name	= "softirq",
	.model	= "ksirq-nrx",
};
