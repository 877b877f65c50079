// A subscriber reaching past control/api.ts into the controller's module.
import type { Controller } from '../control/controller.ts';
export type C = Controller;
