/* metrics.h - forwards to model/metrics.h; goes once scale/autoscale.c and
 * scale/simulate.c include "model/metrics.h" (issue 13). */
#include "model/metrics.h"
