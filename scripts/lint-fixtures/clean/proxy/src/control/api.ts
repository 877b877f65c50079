export interface ControlApi { readonly version: string }
